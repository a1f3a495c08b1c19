<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis simplifyDrawingTol="1" readOnly="0" version="3.22.16-Białowieża" symbologyReferenceScale="-1" labelsEnabled="0" simplifyDrawingHints="1" simplifyAlgorithm="0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" simplifyLocal="1" simplifyMaxScale="1" maxScale="0" minScale="100000000">
  <flags>
    <Identifiable>1</Identifiable>
    <Removable>1</Removable>
    <Searchable>1</Searchable>
    <Private>0</Private>
  </flags>
  <temporal startField="" enabled="0" fixedDuration="0" endField="" mode="0" accumulate="0" limitMode="0" durationField="" startExpression="" endExpression="" durationUnit="min">
    <fixedRange>
      <start></start>
      <end></end>
    </fixedRange>
  </temporal>
  <renderer-v2 type="RuleRenderer" forceraster="0" symbollevels="0" referencescale="-1" enableorderby="0">
    <rules key="{b1948100-0f73-439a-b33d-37c5ffc68e98}">
      <rule symbol="0" label="Prior pose" filter="&quot;prior_head&quot; IS NOT NULL" key="{cfb11b1f-9a5f-4476-b2e3-02931acd0d17}"/>
      <rule symbol="1" label="Prior position (no heading)" filter="ELSE" key="{080d5aee-8a9f-4afd-ad99-729f9c0d57e3}"/>
    </rules>
    <symbols>
      <symbol type="marker" clip_to_extent="1" alpha="1" force_rhr="0" name="0">
        <data_defined_properties>
          <Option type="Map">
            <Option value="" type="QString" name="name"/>
            <Option name="properties"/>
            <Option value="collection" type="QString" name="type"/>
          </Option>
        </data_defined_properties>
        <layer enabled="1" locked="0" pass="0" class="SimpleMarker">
          <Option type="Map">
            <Option value="0" type="QString" name="angle"/>
            <Option value="square" type="QString" name="cap_style"/>
            <Option value="140,140,140,255" type="QString" name="color"/>
            <Option value="1" type="QString" name="horizontal_anchor_point"/>
            <Option value="bevel" type="QString" name="joinstyle"/>
            <Option value="arrow" type="QString" name="name"/>
            <Option value="0,0" type="QString" name="offset"/>
            <Option value="3x:0,0,0,0,0,0" type="QString" name="offset_map_unit_scale"/>
            <Option value="MM" type="QString" name="offset_unit"/>
            <Option value="255,255,255,255" type="QString" name="outline_color"/>
            <Option value="solid" type="QString" name="outline_style"/>
            <Option value="0.3" type="QString" name="outline_width"/>
            <Option value="3x:0,0,0,0,0,0" type="QString" name="outline_width_map_unit_scale"/>
            <Option value="MM" type="QString" name="outline_width_unit"/>
            <Option value="diameter" type="QString" name="scale_method"/>
            <Option value="5" type="QString" name="size"/>
            <Option value="3x:0,0,0,0,0,0" type="QString" name="size_map_unit_scale"/>
            <Option value="MM" type="QString" name="size_unit"/>
            <Option value="1" type="QString" name="vertical_anchor_point"/>
          </Option>
          <prop k="angle" v="0"/>
          <prop k="cap_style" v="square"/>
          <prop k="color" v="140,140,140,255"/>
          <prop k="horizontal_anchor_point" v="1"/>
          <prop k="joinstyle" v="bevel"/>
          <prop k="name" v="arrow"/>
          <prop k="offset" v="0,0"/>
          <prop k="offset_map_unit_scale" v="3x:0,0,0,0,0,0"/>
          <prop k="offset_unit" v="MM"/>
          <prop k="outline_color" v="255,255,255,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0.3"/>
          <prop k="outline_width_map_unit_scale" v="3x:0,0,0,0,0,0"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="size" v="5"/>
          <prop k="size_map_unit_scale" v="3x:0,0,0,0,0,0"/>
          <prop k="size_unit" v="MM"/>
          <prop k="vertical_anchor_point" v="1"/>
          <data_defined_properties>
            <Option type="Map">
              <Option value="" type="QString" name="name"/>
              <Option type="Map" name="properties">
                <Option type="Map" name="angle">
                  <Option value="true" type="bool" name="active"/>
                  <Option value="coalesce(&quot;prior_head&quot;, 0)" type="QString" name="expression"/>
                  <Option value="3" type="int" name="type"/>
                </Option>
              </Option>
              <Option value="collection" type="QString" name="type"/>
            </Option>
          </data_defined_properties>
        </layer>
      </symbol>
      <symbol type="marker" clip_to_extent="1" alpha="1" force_rhr="0" name="1">
        <data_defined_properties>
          <Option type="Map">
            <Option value="" type="QString" name="name"/>
            <Option name="properties"/>
            <Option value="collection" type="QString" name="type"/>
          </Option>
        </data_defined_properties>
        <layer enabled="1" locked="0" pass="0" class="SimpleMarker">
          <Option type="Map">
            <Option value="0" type="QString" name="angle"/>
            <Option value="square" type="QString" name="cap_style"/>
            <Option value="140,140,140,255" type="QString" name="color"/>
            <Option value="1" type="QString" name="horizontal_anchor_point"/>
            <Option value="bevel" type="QString" name="joinstyle"/>
            <Option value="circle" type="QString" name="name"/>
            <Option value="0,0" type="QString" name="offset"/>
            <Option value="3x:0,0,0,0,0,0" type="QString" name="offset_map_unit_scale"/>
            <Option value="MM" type="QString" name="offset_unit"/>
            <Option value="255,255,255,255" type="QString" name="outline_color"/>
            <Option value="solid" type="QString" name="outline_style"/>
            <Option value="0" type="QString" name="outline_width"/>
            <Option value="3x:0,0,0,0,0,0" type="QString" name="outline_width_map_unit_scale"/>
            <Option value="MM" type="QString" name="outline_width_unit"/>
            <Option value="diameter" type="QString" name="scale_method"/>
            <Option value="3" type="QString" name="size"/>
            <Option value="3x:0,0,0,0,0,0" type="QString" name="size_map_unit_scale"/>
            <Option value="MM" type="QString" name="size_unit"/>
            <Option value="1" type="QString" name="vertical_anchor_point"/>
          </Option>
          <prop k="angle" v="0"/>
          <prop k="cap_style" v="square"/>
          <prop k="color" v="140,140,140,255"/>
          <prop k="horizontal_anchor_point" v="1"/>
          <prop k="joinstyle" v="bevel"/>
          <prop k="name" v="circle"/>
          <prop k="offset" v="0,0"/>
          <prop k="offset_map_unit_scale" v="3x:0,0,0,0,0,0"/>
          <prop k="offset_unit" v="MM"/>
          <prop k="outline_color" v="255,255,255,255"/>
          <prop k="outline_style" v="solid"/>
          <prop k="outline_width" v="0"/>
          <prop k="outline_width_map_unit_scale" v="3x:0,0,0,0,0,0"/>
          <prop k="outline_width_unit" v="MM"/>
          <prop k="scale_method" v="diameter"/>
          <prop k="size" v="3"/>
          <prop k="size_map_unit_scale" v="3x:0,0,0,0,0,0"/>
          <prop k="size_unit" v="MM"/>
          <prop k="vertical_anchor_point" v="1"/>
          <data_defined_properties>
            <Option type="Map">
              <Option value="" type="QString" name="name"/>
              <Option name="properties"/>
              <Option value="collection" type="QString" name="type"/>
            </Option>
          </data_defined_properties>
        </layer>
      </symbol>
    </symbols>
  </renderer-v2>
  <customproperties>
    <Option/>
  </customproperties>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
  <geometryOptions removeDuplicateNodes="0" geometryPrecision="0">
    <activeChecks type="StringList">
      <Option value="" type="QString"/>
    </activeChecks>
    <checkConfiguration/>
  </geometryOptions>
  <legend type="default-vector" showLabelLegend="0"/>
  <referencedLayers/>
  <fieldConfiguration>
    <field configurationFlags="None" name="photo">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="status">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="message">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="geom_src">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="x">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="y">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="lon">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="lat">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="heading">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="prior_x">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="prior_y">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="prior_lon">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="prior_lat">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="prior_head">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="shift_m">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="scale">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="inliers">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="inl_ratio">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="confidence">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="runtime_s">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="model">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="depth">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
    <field configurationFlags="None" name="n_cand">
      <editWidget type="">
        <config>
          <Option/>
        </config>
      </editWidget>
    </field>
  </fieldConfiguration>
  <aliases>
    <alias index="0" name="" field="photo"/>
    <alias index="1" name="" field="status"/>
    <alias index="2" name="" field="message"/>
    <alias index="3" name="" field="geom_src"/>
    <alias index="4" name="" field="x"/>
    <alias index="5" name="" field="y"/>
    <alias index="6" name="" field="lon"/>
    <alias index="7" name="" field="lat"/>
    <alias index="8" name="" field="heading"/>
    <alias index="9" name="" field="prior_x"/>
    <alias index="10" name="" field="prior_y"/>
    <alias index="11" name="" field="prior_lon"/>
    <alias index="12" name="" field="prior_lat"/>
    <alias index="13" name="" field="prior_head"/>
    <alias index="14" name="" field="shift_m"/>
    <alias index="15" name="" field="scale"/>
    <alias index="16" name="" field="inliers"/>
    <alias index="17" name="" field="inl_ratio"/>
    <alias index="18" name="" field="confidence"/>
    <alias index="19" name="" field="runtime_s"/>
    <alias index="20" name="" field="model"/>
    <alias index="21" name="" field="depth"/>
    <alias index="22" name="" field="n_cand"/>
  </aliases>
  <defaults>
    <default applyOnUpdate="0" expression="" field="photo"/>
    <default applyOnUpdate="0" expression="" field="status"/>
    <default applyOnUpdate="0" expression="" field="message"/>
    <default applyOnUpdate="0" expression="" field="geom_src"/>
    <default applyOnUpdate="0" expression="" field="x"/>
    <default applyOnUpdate="0" expression="" field="y"/>
    <default applyOnUpdate="0" expression="" field="lon"/>
    <default applyOnUpdate="0" expression="" field="lat"/>
    <default applyOnUpdate="0" expression="" field="heading"/>
    <default applyOnUpdate="0" expression="" field="prior_x"/>
    <default applyOnUpdate="0" expression="" field="prior_y"/>
    <default applyOnUpdate="0" expression="" field="prior_lon"/>
    <default applyOnUpdate="0" expression="" field="prior_lat"/>
    <default applyOnUpdate="0" expression="" field="prior_head"/>
    <default applyOnUpdate="0" expression="" field="shift_m"/>
    <default applyOnUpdate="0" expression="" field="scale"/>
    <default applyOnUpdate="0" expression="" field="inliers"/>
    <default applyOnUpdate="0" expression="" field="inl_ratio"/>
    <default applyOnUpdate="0" expression="" field="confidence"/>
    <default applyOnUpdate="0" expression="" field="runtime_s"/>
    <default applyOnUpdate="0" expression="" field="model"/>
    <default applyOnUpdate="0" expression="" field="depth"/>
    <default applyOnUpdate="0" expression="" field="n_cand"/>
  </defaults>
  <constraints>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="photo" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="status" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="message" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="geom_src" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="x" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="y" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="lon" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="lat" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="heading" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="prior_x" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="prior_y" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="prior_lon" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="prior_lat" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="prior_head" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="shift_m" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="scale" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="inliers" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="inl_ratio" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="confidence" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="runtime_s" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="model" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="depth" notnull_strength="0"/>
    <constraint unique_strength="0" exp_strength="0" constraints="0" field="n_cand" notnull_strength="0"/>
  </constraints>
  <constraintExpressions>
    <constraint desc="" exp="" field="photo"/>
    <constraint desc="" exp="" field="status"/>
    <constraint desc="" exp="" field="message"/>
    <constraint desc="" exp="" field="geom_src"/>
    <constraint desc="" exp="" field="x"/>
    <constraint desc="" exp="" field="y"/>
    <constraint desc="" exp="" field="lon"/>
    <constraint desc="" exp="" field="lat"/>
    <constraint desc="" exp="" field="heading"/>
    <constraint desc="" exp="" field="prior_x"/>
    <constraint desc="" exp="" field="prior_y"/>
    <constraint desc="" exp="" field="prior_lon"/>
    <constraint desc="" exp="" field="prior_lat"/>
    <constraint desc="" exp="" field="prior_head"/>
    <constraint desc="" exp="" field="shift_m"/>
    <constraint desc="" exp="" field="scale"/>
    <constraint desc="" exp="" field="inliers"/>
    <constraint desc="" exp="" field="inl_ratio"/>
    <constraint desc="" exp="" field="confidence"/>
    <constraint desc="" exp="" field="runtime_s"/>
    <constraint desc="" exp="" field="model"/>
    <constraint desc="" exp="" field="depth"/>
    <constraint desc="" exp="" field="n_cand"/>
  </constraintExpressions>
  <expressionfields/>
  <attributeactions/>
  <attributetableconfig sortExpression="" actionWidgetStyle="dropDown" sortOrder="0">
    <columns/>
  </attributetableconfig>
  <conditionalstyles>
    <rowstyles/>
    <fieldstyles/>
  </conditionalstyles>
  <storedexpressions/>
  <editform tolerant="1"></editform>
  <editforminit/>
  <editforminitcodesource>0</editforminitcodesource>
  <editforminitfilepath></editforminitfilepath>
  <editforminitcode><![CDATA[]]></editforminitcode>
  <featformsuppress>0</featformsuppress>
  <editorlayout>generatedlayout</editorlayout>
  <editable/>
  <labelOnTop/>
  <reuseLastValue/>
  <dataDefinedFieldProperties/>
  <widgets/>
  <previewExpression></previewExpression>
  <mapTip></mapTip>
  <layerGeometryType>0</layerGeometryType>
</qgis>
